// soma/rl/classic_control.h — Gymnasium's classic-control tasks with their published dynamics,
// rewards, time limits and termination (Gymnasium 0.29 / 1.0 classic_control).
//
//   CartPole-v1     obs [x, x_dot, theta, theta_dot], Discrete(2), reward +1 per step,
//                   ends when |x| > 2.4 or |theta| > 12 deg; 500 steps. Explicit Euler, tau 0.02.
//   Acrobot-v1      obs [cos t1, sin t1, cos t2, sin t2, dt1, dt2], Discrete(3) torque {-1, 0, 1},
//                   reward -1 per step (0 on the terminal step), ends when
//                   -cos t1 - cos(t1 + t2) > 1; 500 steps. RK4 over dt 0.2, "book" dynamics.
//   MountainCar-v0  obs [position, velocity], Discrete(3), reward -1 per step, ends when
//                   position >= 0.5; 200 steps.
//   Pendulum-v1     obs [cos th, sin th, thdot], Box([1], -2, 2), reward
//                   -(norm(th)^2 + 0.1 thdot^2 + 0.001 u^2), never terminates; 200 steps.
//
// Initial states are drawn uniformly from the same ranges as Gymnasium, but with
// soma::Generator, so a seed gives different (still deterministic) numbers than numpy.
#pragma once

#include "soma/rl/env.h"

namespace soma::rl {

class CartPole : public Env {
  public:
    CartPole();
    std::string name() const override { return "CartPole-v1"; }
    std::vector<double> state() const override { return {x_, x_dot_, theta_, theta_dot_}; }

  protected:
    void reset_state() override;
    void assign_state(const std::vector<double>& s) override;
    double advance(const double* action, bool& terminated) override;
    void observe(float* obs) const override;

  private:
    double x_ = 0, x_dot_ = 0, theta_ = 0, theta_dot_ = 0;
};

class Acrobot : public Env {
  public:
    Acrobot();
    std::string name() const override { return "Acrobot-v1"; }
    /// [theta1, theta2, dtheta1, dtheta2]
    std::vector<double> state() const override { return {s_[0], s_[1], s_[2], s_[3]}; }

  protected:
    void reset_state() override;
    void assign_state(const std::vector<double>& s) override;
    double advance(const double* action, bool& terminated) override;
    void observe(float* obs) const override;

  private:
    double s_[4] = {0, 0, 0, 0};
};

class MountainCar : public Env {
  public:
    MountainCar();
    std::string name() const override { return "MountainCar-v0"; }
    std::vector<double> state() const override { return {position_, velocity_}; }

  protected:
    void reset_state() override;
    void assign_state(const std::vector<double>& s) override;
    double advance(const double* action, bool& terminated) override;
    void observe(float* obs) const override;

  private:
    double position_ = 0, velocity_ = 0;
};

class Pendulum : public Env {
  public:
    Pendulum();
    std::string name() const override { return "Pendulum-v1"; }
    /// [theta, theta_dot]
    std::vector<double> state() const override { return {theta_, theta_dot_}; }

  protected:
    void reset_state() override;
    void assign_state(const std::vector<double>& s) override;
    double advance(const double* action, bool& terminated) override;
    void observe(float* obs) const override;

  private:
    double theta_ = 0, theta_dot_ = 0;
};

}  // namespace soma::rl
